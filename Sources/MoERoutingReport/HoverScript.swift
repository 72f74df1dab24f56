// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// The one small inline script of a report, present only when a heatmap is drawn as an image
/// (``HeatmapChart/imageElement(scale:x:y:width:height:)``): hovering such an image shows the
/// cell under the pointer, by its true row and column labels (expert ids), with its value
/// recovered from the pixel's palette level within half a quantisation step. The image reads
/// without it (and the page loads nothing else); the script only adds the tooltip.
///
/// The image carries what the tooltip needs: `data-rows` and `data-cols` (the labels in drawn
/// order, joined by `|`), `data-y` and `data-x` (axis names), `data-lo` and `data-step` (the
/// value of level 0 and of one level). The script decodes each image once into a canvas and maps
/// a pixel's colour to the nearest of the 256 palette colours (``HeatmapRaster/palette``).
///
/// ```swift
/// html += HoverScript.element   // before </body>, once
/// ```
enum HoverScript {
    /// The palette as 256 six-digit hex colours, concatenated.
    static var paletteHex: String {
        let digits = Array("0123456789abcdef")
        var out = ""
        for (r, g, b) in HeatmapRaster.palette {
            for v in [r, g, b] {
                out.append(digits[Int(v / 16)])
                out.append(digits[Int(v % 16)])
            }
        }
        return out
    }

    /// The `<script>` element.
    static var element: String {
        "<script>\n(function(){var P=\"\(paletteHex)\";\n" + body + "})();\n</script>\n"
    }

    static let body = #"""
        var pal=[];for(var i=0;i<256;i++)pal.push(parseInt(P.substr(i*6,6),16));
        var tip=document.createElement("div");tip.className="moe-tip";document.body.appendChild(tip);
        function hide(){tip.style.display="none"}
        function pixels(img){if(img.moePixels!==undefined)return img.moePixels;img.moePixels=null;
        var im=new Image();im.onload=function(){var c=document.createElement("canvas");c.width=im.naturalWidth;
        c.height=im.naturalHeight;var g=c.getContext("2d");g.drawImage(im,0,0);
        try{img.moePixels={w:c.width,h:c.height,d:g.getImageData(0,0,c.width,c.height).data}}catch(e){}};
        im.src=img.getAttribute("href");return null}
        function level(d,i){var best=0,bd=1e9;for(var q=0;q<256;q++){var v=pal[q],dr=(v>>16)-d[i],
        dg=(v>>8&255)-d[i+1],db=(v&255)-d[i+2],e=dr*dr+dg*dg+db*db;if(e<bd){bd=e;best=q}}return best}
        function fmt(v){var a=Math.abs(v);if(a===0)return "0";
        return (a<1e-3||a>=1e6)?v.toExponential(3):String(+v.toPrecision(4))}
        function cell(img,r,c){var px=img.moePixels;if(!px||r<0||c<0||r>=px.h||c>=px.w)return null;
        var q=level(px.d,(r*px.w+c)*4),lo=+img.getAttribute("data-lo"),st=+img.getAttribute("data-step");
        var rows=img.getAttribute("data-rows").split("|"),cols=img.getAttribute("data-cols").split("|");
        return img.getAttribute("data-y")+": "+rows[r]+", "+img.getAttribute("data-x")+": "+cols[c]+" = "+
        (q===255?"no data":fmt(lo+q*st)+" (\u00b1"+fmt(st/2)+")")}
        window.moeCell=function(img,r,c){pixels(img);return cell(img,r,c)};
        document.addEventListener("mousemove",function(e){var img=e.target;
        if(!img.classList||!img.classList.contains("raster")){hide();return}
        var px=pixels(img);if(!px){hide();return}var b=img.getBoundingClientRect();
        var t=cell(img,Math.floor((e.clientY-b.top)/b.height*px.h),Math.floor((e.clientX-b.left)/b.width*px.w));
        if(!t){hide();return}tip.textContent=t;tip.style.left=(e.clientX+14)+"px";tip.style.top=(e.clientY+14)+"px";
        tip.style.display="block"});

        """#
}
